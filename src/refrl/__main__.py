"""`python -m refrl ...` is the same as the `refrl` command."""

from refrl.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
