"""DVC stages: one thin module per stage, run as ``python -m stages.<name>``.

Each ``main()`` parses the paths ``dvc.yaml`` passes, loads and validates ``params.yaml``, calls
the ``edgeproof`` library and writes exactly the outputs ``dvc.yaml`` declares, atomically.
"""
