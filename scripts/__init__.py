"""The five entry points (``python scripts/<name>.py`` or ``make <target>``): config -> spec ->
one library call -> print. A package only so that the import-linter contract can see them."""
