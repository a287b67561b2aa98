import sys

from saml_core.cli import exit_quietly, main

sys.exit(exit_quietly(main()))
