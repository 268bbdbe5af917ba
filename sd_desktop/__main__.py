"""Entry point: `sd-desktop` opens the app, `sd-desktop generate ...` runs the engine."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "generate":
        from .cli import run_generate

        return run_generate(args[1:])
    from .app import run_app

    return run_app(args)


if __name__ == "__main__":
    sys.exit(main())
