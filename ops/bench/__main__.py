from ops.bench.run import main

raise SystemExit(main())
