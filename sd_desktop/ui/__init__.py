"""Qt widgets of the desktop app: the main window and its panels."""
