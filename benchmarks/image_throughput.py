"""Feature-extraction throughput of the image encoders of `03_image` (with EfficientNet-Lite0 on Flickr8k when the `pretrained` extra is installed), and where the time goes.

For each encoder and dataset it times, separately and on the same images:
  decode     an image to an RGB PIL image (shapes: in-memory array -> PIL; Flickr8k: JPEG file -> RGB),
  transform  the evaluation pipeline (to RGB, to tensor, resize to the model's input size, normalise),
  forward    the network in inference mode, in batches (one warm-up batch first, not timed),
and prints images/s for each stage and overall, with the batch size, thread count and the load average (the
machine may be shared: a load above the core count means the figures were taken under load).

    python benchmarks/image_throughput.py [--threads 1] [--batch-size 128] [--n 512] [--flickr8k PATH]
"""
import argparse, os, sys, time
from pathlib import Path

import pandas as pd
import torch
import torchvision

from crossmodal_course.data import shapes_dataset
from crossmodal_course.formats import load_flickr8k
from crossmodal_course.image import channel_stats, count_macs, pretrained_encoder, small_cnn, time_extraction, tv_encoder
from crossmodal_course.text import MissingExtraError

DEFAULT_FLICKR8K = Path(os.environ.get("CROSSMODAL_FLICKR8K", Path(__file__).resolve().parents[2] / "shared/data/flickr8k"))


def row(dataset, label, enc, ds, n, batch_size):
    t = time_extraction(enc, ds, n=n, batch_size=batch_size)
    total = t["decode_s"] + t["transform_s"] + t["forward_s"]
    return {"data": dataset, "encoder": label, "input": f"{enc.input_size}×{enc.input_size}",
            "GMACs/img": count_macs(enc, (3, enc.input_size, enc.input_size))["total"] / 1e9,
            "images": t["images"], "batch": t["batch_size"], "threads": t["threads"],
            "decode img/s": t["decode_img_per_s"], "transform img/s": t["transform_img_per_s"],
            "forward img/s": t["forward_img_per_s"], "total img/s": t["total_img_per_s"],
            "decode %": 100 * t["decode_s"] / total, "transform %": 100 * t["transform_s"] / total,
            "forward %": 100 * t["forward_s"] / total}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--n", type=int, default=512, help="images timed per encoder (fewer for the slow backbones at 224)")
    p.add_argument("--flickr8k", type=Path, default=DEFAULT_FLICKR8K)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}; threads {torch.get_num_threads()} "
          f"of {os.cpu_count()} cores; batch size {args.batch_size}; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    test = shapes_dataset("test")
    mean, std = channel_stats(shapes_dataset("train"), 64)
    rows.append(row("shapes 64×64 (memory)", "SmallResNet", small_cnn(mean=mean, std=std), test, args.n, args.batch_size))
    rows.append(row("shapes 64×64 (memory)", "ResNet-18", tv_encoder("resnet18", weights=None, input_size=64, mean=mean, std=std),
                    test, args.n, args.batch_size))
    if (args.flickr8k / "Flickr8k_text").is_dir():
        dev = load_flickr8k(args.flickr8k, "dev")
        for i in range(min(args.n, len(dev))): Path(dev.images[i]).read_bytes()   # warm the page cache: time decoding, not the disk
        try: effnet = [("EfficientNet-Lite0 (ImageNet)", pretrained_encoder("efficientnet-lite0", input_size=160), args.n // 2),
                       ("EfficientNet-Lite0 (ImageNet)", pretrained_encoder("efficientnet-lite0", input_size=224), args.n // 4)]
        except MissingExtraError as e: effnet = []; print(f"no EfficientNet-Lite0 rows: {e}")
        for label, enc, n in effnet + [("SmallResNet", small_cnn(input_size=96), args.n),
                              ("SmallResNet", small_cnn(input_size=160), args.n),
                              ("ResNet-18", tv_encoder("resnet18", weights=None, input_size=160), args.n // 2),
                              ("ResNet-18", tv_encoder("resnet18", weights=None, input_size=224), args.n // 4),
                              ("VGG-16 fc7", tv_encoder("vgg16", weights=None, layer="fc7", input_size=224), args.n // 16)]:
            rows.append(row("Flickr8k dev JPEG 160×160", label, enc, dev, n, min(args.batch_size, n)))
    else:
        print(f"Flickr8k not found at {args.flickr8k}: shapes only")
    df = pd.DataFrame(rows)
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(df.round({"GMACs/img": 3, "decode img/s": 0, "transform img/s": 0, "forward img/s": 0, "total img/s": 0,
                        "decode %": 1, "transform %": 1, "forward %": 1}).to_string(index=False))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return df


if __name__ == "__main__":
    main()
