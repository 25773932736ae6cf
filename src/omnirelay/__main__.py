from omnirelay.cli import main

raise SystemExit(main())
