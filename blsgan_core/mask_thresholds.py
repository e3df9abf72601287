"""What the segmenter's probabilities become: the outlines, and the masks BLS-GAN gets.

No torch here: the command line reads these defaults when it starts.
"""

OUTLINE_THRESHOLD = 0.5
"""The bones' outlines: the SEG objects, the joint-space measurements, Dice."""

SEPARATION_THRESHOLD = 0.02
"""A bone's mask for BLS-GAN reaches out to this probability near the other bone (not the
paper's, which separates with exact masks). The separator zeroes every pixel outside its
masks, so a true bone pixel that a mask leaves out is lost; where the bones meet (the
hidden outline, the overlap's ends) the segmenter is least sure. Chosen and measured in
docs/training.md, "Session 22: widening only towards the other bone"."""

SEPARATION_CONTACT_PX = 2
"""How far from the other bone's outline (4-connected steps) that widening may reach. On
a bone's free side a wider mask only adds soft tissue, which a lone layer copies: a
ragged fringe in the layer images (docs/images/separation-threshold-fringe.jpg)."""
