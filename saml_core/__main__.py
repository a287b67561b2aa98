import sys

if sys.argv[1:2] == ["bench"]:
    # the bench has its own options (threads, rounds, clock, thread settings): saml_core.bench.main
    from saml_core.bench import main as bench_main

    sys.exit(bench_main(sys.argv[2:]))

from saml_core.cli import main

sys.exit(main())
