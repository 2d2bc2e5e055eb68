"""Training recipes that ship with the SDK (YAML package data), loaded by `spinal.language.load_shipped_recipe`.

`subtasks_vqa` and `subtask_mem_vqa_speech`; `spinal render DATASET --recipe NAME` previews them.
"""
