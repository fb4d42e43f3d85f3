"""``dvlite import-dvc`` and ``dvlite import-lfs``: bring a DVC project or a git-lfs repo over
to dvlite in one command. ``dvc`` and ``lfs`` orchestrate; ``dvc_files``, ``dvc_config``,
``dvc_pipeline`` and ``dvc_template`` read DVC's formats; ``common`` holds what both share
(the dirty-tree refusal, storing foreign data with its own digest checked, the final check)."""
