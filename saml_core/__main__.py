import sys

from saml_core.cli import main

sys.exit(main())
