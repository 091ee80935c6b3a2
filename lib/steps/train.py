"""Step train: a decoder for one layer, trained on the cached features of the training split through the one
training loop (`lib.training.fit_decoder`), validated on the validation split every epoch."""
from __future__ import annotations

from .. import data as datamod
from .. import plan as planmod
from ..encoders import layer_encoder, plan_extractor
from ..io import save_torch, write_bytes
from ..training import OnlineAugmentation, fit_decoder
from .data import load_store, split_indices
from .encode import load_features


def run(root, arch: str, layer: str, run: str = "", progress: bool = True) -> dict:
    """Train one layer's run ("" its main run; a seed repeat or capacity-matched run by name: its settings differ)."""
    plan = planmod.load(root)
    settings = plan.layer(arch, layer, run)
    store = load_store(plan.paths)
    feats, encoder = load_features(plan.paths, arch, layer)
    train_i, val_i = split_indices(store, "train"), split_indices(store, "val")
    crops = datamod.centre_crops(store, store["crop"])
    x = feats["features"]
    out = plan.paths.layer_dir(arch, layer, run)
    augmentation, extractor = None, None
    if settings["augment"] or settings["feedback"]:  # the layer's encoder is needed
        # the encoder the features came from: a seed repeat changes the decoder's seed, never the encoder's
        extractor = plan_extractor(plan.encoder(arch), [layer])
    if settings["augment"]:
        augmentation = OnlineAugmentation(extractor, layer, [store["images"][i] for i in train_i], store["crop"])
    train_x, train_crops = x[train_i], crops[train_i]
    resume_file = out / "training_state.pt"  # per-epoch state: a killed run continues from here
    fit = fit_decoder(settings, train_x, train_crops, x[val_i], crops[val_i], progress=progress, resume_file=resume_file,
                      augmentation=augmentation,
                      encode=layer_encoder(extractor, layer) if extractor else None)
    info = {**fit.info, "train_images": len(train_i)}
    checkpoint = {"state_dict": fit.decoder.state_dict(), "settings": settings, "weights": encoder["weights"],
                  "mean_image": datamod.training_mean_image(train_crops),  # the no-information baseline evaluation scores
                  "weights_detail": encoder["weights_detail"], "encode_seconds": encoder["seconds"], **info}
    save_torch(checkpoint, out / "decoder.pt")
    write_bytes(out / "history.csv", fit.history.to_csv(index=False).encode())
    resume_file.unlink(missing_ok=True)  # finished: the checkpoint above is the result
    print(f"{arch} {layer}{' ' + run if run else ''}: {settings['decoder']} decoder, {info['decoder_params']:,} params, "
          f"{len(fit.history)} epochs in {info['train_seconds']:.0f}s, kept epoch {info['best_epoch']} "
          f"({settings['checkpoint']}: val MSE {info['best_val_loss']:.4f}), {encoder['weights']} weights")
    return {"decoder": fit.decoder, "history": fit.history, "settings": settings, **info}
