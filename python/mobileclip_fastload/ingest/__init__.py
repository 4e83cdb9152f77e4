"""The ingest core that ``convert`` and ``reinforce`` both stand on.

Everything a tool needs to turn many input shards into one store, and that is not specific to one tool:
input expansion and pairing (``inputs``), tar reading (``tar_samples``), image checks (``images``,
``image_origin``), skip reasons (``skips``), embedding encodings (``precision``), the task life
(``task``), done records and resume (``resume``), executors (``executors``: inline, process, ray, torchrun),
progress, parent watch, the report base (``report``), the options base (``options``), CLI helpers
(``cli_args``) and store output (``store_io``). ``convert`` and ``reinforce`` keep only what is their own.
"""
