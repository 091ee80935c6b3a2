"""What every decoder is held to, from least to most information about the image: the training images' mean image
(nothing about the image at all: what a decoder that learnt nothing from the features outputs at best), the image's
own mean colour (3 numbers), its thumbnail at the layer's grid (a colour per position). The evaluation scores them
(`lib.evaluation`), the statistics pair each with the decoder (`lib.stats`), and the report names them."""

BASELINE_NAMES = ("mean_image", "mean_colour", "thumbnail")
BASELINE_LABELS = {"mean_image": "no information (training mean image)", "mean_colour": "mean colour",
                   "thumbnail": "thumbnail"}
BASELINE_SHORT = {"mean_image": "no information", "mean_colour": "mean colour", "thumbnail": "thumbnail"}  # in tables

# A decoder that kept its mean-image start outputs the baseline itself, through a float32 round trip of the ImageNet
# normalisation: its PSNR then equals the baseline's to about 1e-5 dB. Reaching the no-information baseline is
# judged with this tolerance, so that such a decoder counts as at it, not below it by rounding.
AT_BASELINE_DB = 1e-4


def at_or_above(value, bar):
    """Whether `value` (dB: a PSNR, or a margin over a baseline) reaches `bar`, up to `AT_BASELINE_DB`; works on numbers
    and on pandas/numpy columns alike."""
    return value >= bar - AT_BASELINE_DB
