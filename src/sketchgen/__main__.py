from sketchgen.cli import main

raise SystemExit(main())
