"""CoCa captioners and the synthetic captions of multi-modal reinforced training.

Stages: ``captioner`` (pretrain on a base set, or fine-tune a parent on a set with better captions) and
``captions`` (S captions per image from one captioner), plus a ``caption-quality`` report comparing
captioners. The registry of named captioners is ``captioners.yaml`` (schema in ``spec.py``).
"""
