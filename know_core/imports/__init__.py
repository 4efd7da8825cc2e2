"""Films from other tools' checkpoints: readers (:mod:`.readers`), the parameter-group rule for any architecture
(:mod:`.groups`), the ``imported`` run kind (:mod:`.film`) and the export back into the source's layout
(:mod:`.export`)."""
