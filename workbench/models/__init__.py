"""Students (open_clip names + registered micro configs); later teachers and captioners."""
