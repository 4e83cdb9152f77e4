"""`python -m mobileclip_fastload COMMAND ...`; see `mobileclip_fastload.cli`."""

from mobileclip_fastload.cli import main

raise SystemExit(main())
