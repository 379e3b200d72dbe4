from gansynth_instrument.cli import main

raise SystemExit(main())
