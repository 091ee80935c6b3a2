"""The study being reproduced: its published table, read by the figures (the headline's study curve) and the
report's findings. Its own module, so that editing the report's sentences never redraws the figures."""
import pandas as pd

# The study being reproduced: PSNR, SSIM, LPIPS (mean, std), train minutes, decoder params.
PUBLISHED = pd.DataFrame(
    [
        ("resnet34", "layer1", 14.32, 0.94, 0.474, 0.045, 0.455, 0.031, 69.8, "250K"),
        ("resnet34", "layer2", 14.04, 0.86, 0.390, 0.042, 0.555, 0.029, 30.0, "975K"),
        ("resnet34", "layer3", 13.12, 0.71, 0.283, 0.045, 0.782, 0.025, 29.9, "3.9M"),
        ("resnet34", "layer4", 12.72, 0.63, 0.272, 0.046, 0.867, 0.023, 30.0, "15.4M"),
        ("vgg16", "block1", 14.45, 2.27, 0.530, 0.121, 0.398, 0.109, 162.8, "~200K"),
        ("vgg16", "block2", 14.34, 0.94, 0.495, 0.045, 0.432, 0.031, 12.9, "~500K"),
        ("vgg16", "block3", 14.01, 0.85, 0.405, 0.044, 0.536, 0.031, 11.4, "~1M"),
        ("vgg16", "block4", 13.40, 0.69, 0.305, 0.048, 0.709, 0.038, 11.5, "~2M"),
        ("vgg16", "block5", 12.68, 0.59, 0.273, 0.047, 0.880, 0.030, 11.5, "~4M"),
        ("vit_base_patch16_224", "block0", 14.29, 0.93, 0.454, 0.045, 0.509, 0.033, 32.2, "34.6M"),
        ("vit_base_patch16_224", "block1", 14.01, 0.87, 0.377, 0.043, 0.611, 0.027, 32.5, "34.6M"),
        ("vit_base_patch16_224", "block5", 13.89, 0.82, 0.346, 0.044, 0.654, 0.027, 33.1, "34.6M"),
        ("vit_base_patch16_224", "block8", 13.33, 0.71, 0.289, 0.047, 0.790, 0.031, 33.7, "34.6M"),
        ("vit_base_patch16_224", "block11", 12.85, 0.65, 0.278, 0.046, 0.861, 0.026, 34.2, "34.6M"),
    ],
    columns=["arch", "layer", "psnr_mean", "psnr_std", "ssim_mean", "ssim_std", "lpips_mean", "lpips_std",
             "train_minutes", "decoder_params"],
)
