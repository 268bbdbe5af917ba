"""Entry point: `sd-desktop` opens the app, `sd-desktop generate ...` runs the engine.

Also: `--self-test` (make one picture end to end, exit 0 if it worked) and
`--install-desktop-entry` (add the app to the Linux application menu).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "generate":
        from .cli import run_generate

        return run_generate(args[1:])
    if "--self-test" in args:
        from .selftest import main as self_test

        return self_test()
    if args and args[0] == "--install-desktop-entry":
        from .install_desktop import main as install_desktop

        return install_desktop(args[1:])
    from .platform_check import check_before_qt

    if code := check_before_qt():  # a missing X library: say which, instead of Qt aborting
        return code
    from .app import run_app

    return run_app(args)


if __name__ == "__main__":
    sys.exit(main())
