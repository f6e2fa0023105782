from rescnn_appliance.cli import main

raise SystemExit(main())
