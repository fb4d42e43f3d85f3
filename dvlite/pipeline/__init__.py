"""The pipeline domain: stages from ``dvlite.toml``, their params, graph and ``dvlite.lock``.

Pure over files and storage: it takes paths, never a Repo. dvlite reads
``dvlite.toml`` and never writes it; it writes only ``dvlite.lock``.
"""
