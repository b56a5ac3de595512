"""``python -m perfect21`` entry point."""

from perfect21.cli import main

if __name__ == "__main__":
    main()
