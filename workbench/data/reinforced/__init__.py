"""The reinforced dataset's format: its shards (stored embeddings, augmentation parameters, synthetic
captions) and the manifest that opens them. Written by the reinforce stage, read by the trainer."""
