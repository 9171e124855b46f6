"""`genzoo plot`: its arguments and the figures it draws (kept apart from cli.py, which
holds the other commands)."""

from __future__ import annotations

import argparse
from pathlib import Path

from genzoo.errors import GenzooError


def add_plot(sub) -> None:
    p = sub.add_parser("plot", help="figures from runs")
    kinds = p.add_subparsers(dest="figure", required=True, metavar="FIGURE")
    m = kinds.add_parser("manifold", help="decoder over a grid of a 2-D latent space")
    m.add_argument("run")
    m.add_argument("--out", help="PNG file (default: RUN/manifold.png)")
    m.add_argument("--grid", type=int, default=20, help="cells per side")
    t = kinds.add_parser("traversal", help="decode while one latent at a time walks -span..span")
    t.add_argument("run")
    t.add_argument("--out", help="PNG file (default: RUN/traversal.png)")
    t.add_argument("--dims", help="latent dims to walk, e.g. 0,1,2 (default: the first 10)")
    t.add_argument("--steps", type=int, default=11, help="images per row")
    t.add_argument("--span", type=float, default=3.0, help="walk from -span to +span")
    t.add_argument("--index", type=int, default=0,
                   help="test example whose code is the centre of the walk")
    d = kinds.add_parser("latent-dims", help="VAE samples for several latent sizes side by side")
    d.add_argument("runs", nargs="*", help="existing VAE runs (else they are trained)")
    d.add_argument("--out", required=True, help="PNG file")
    d.add_argument("--dims", default="2,5,10,20", help="latent sizes to train when no runs given")
    d.add_argument("--train-dir", default="runs/latent-dims", help="where trained runs go")
    d.add_argument("--data", default="mnist5k")
    d.add_argument("--steps", type=int, default=2000)
    d.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    d.add_argument("--n", type=int, default=64)
    i = kinds.add_parser("interpolation", help="walks between random latents (lerp or slerp)")
    i.add_argument("run")
    i.add_argument("--out", help="PNG file, or a .gif for an animation of the walks "
                   "(default: RUN/interpolation-MODE.png)")
    i.add_argument("--mode", default="slerp", help="slerp (default) or lerp")
    i.add_argument("--rows", type=int, default=8)
    i.add_argument("--steps", type=int, default=10)
    i.add_argument("--seed", type=int, default=0)
    i.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True)
    for name, text in (("style-mixing", "StyleGAN: coarse/middle/fine styles from a second "
                                        "source (arXiv:1812.04948 fig. 3)"),
                       ("noise", "StyleGAN: noise in all, no, fine-only, coarse-only layers "
                                 "from the same w (fig. 5)"),
                       ("truncation", "StyleGAN: the same latents at several truncation psi "
                                      "(fig. 8)")):
        f = kinds.add_parser(name, help=text)
        f.add_argument("run")
        f.add_argument("--out", help=f"PNG file (default: RUN/{name}.png)")
        f.add_argument("--seed", type=int, default=0)
        f.add_argument("--ema", action=argparse.BooleanOptionalAction, default=True)
        if name == "truncation":
            f.add_argument("--psi", default="-1,-0.5,0,0.5,0.7,1",
                           help="comma-separated psi values, one column each")
    g = kinds.add_parser("training-gif", help="animated GIF of a run's sample pictures")
    g.add_argument("run")
    g.add_argument("--out", help="GIF file (default: RUN/training.gif)")
    g.add_argument("--fps", type=float, default=4)
    s = kinds.add_parser("decision", help="a 2-D GAN's discriminator output over the plane")
    s.add_argument("run")
    s.add_argument("--out", help="PNG file (default: RUN/decision.png)")
    s.add_argument("--n", type=int, default=1000, help="generator samples drawn on top")
    s.add_argument("--seed", type=int, default=0)
    lt = kinds.add_parser("latent", help="test codes as a scatter coloured by class, prior "
                          "samples in grey (aae, vae; PCA when the code is not 2-D)")
    lt.add_argument("run")
    lt.add_argument("--out", help="PNG file (default: RUN/latent.png)")
    lt.add_argument("--n", type=int, default=2000, help="test examples drawn")
    r = kinds.add_parser("receptive-field", help="which inputs influence an autoregressive "
                         "model's output at a position (|gradient|; pixelcnn, wavenet)")
    r.add_argument("run")
    r.add_argument("--out", help="PNG file (default: RUN/receptive-field.png)")
    r.add_argument("--position", help="output position: i,j for images, t for sequences "
                   "(default: the centre)")
    r.add_argument("--index", type=int, default=0, help="test example used as the input")
    f = kinds.add_parser("features", help="domain adaptation: source and target test features "
                         "in 2-D, one panel per run (dann; e.g. source-only vs adapted)")
    f.add_argument("runs", nargs="+", metavar="RUN")
    f.add_argument("--out", help="PNG file (default: FIRST_RUN/features.png)")
    f.add_argument("--method", default="tsne", help="tsne (default) or pca")
    f.add_argument("--n", type=int, default=500, help="test images per domain")
    f.add_argument("--seed", type=int, default=0, help="seed of t-SNE")
    a = kinds.add_parser("analogy", help="content of test videos moved along another test "
                         "video's poses (drnet)")
    a.add_argument("run")
    a.add_argument("--out", help="PNG file (default: RUN/analogy.png)")
    a.add_argument("--rows", type=int, default=6, help="content videos (rows)")
    a.add_argument("--pose", type=int, default=0, help="test video whose poses are used")
    pi = kinds.add_parser("pose-interpolation", help="content decoded along a line in pose "
                          "space (drnet)")
    pi.add_argument("run")
    pi.add_argument("--out", help="PNG file (default: RUN/pose-interpolation.png)")
    pi.add_argument("--rows", type=int, default=6, help="content videos (rows)")
    pi.add_argument("--pose", type=int, default=0,
                    help="test video: from the pose of its first frame to that of its last")
    pi.add_argument("--steps", type=int, default=10, help="images per row")
    pr = kinds.add_parser("prediction", help="true and predicted future frames of test videos "
                          "(drnet with model.lstm=true)")
    pr.add_argument("run")
    pr.add_argument("--out", help="PNG file (default: RUN/prediction.png)")
    pr.add_argument("--rows", type=int, default=4, help="test videos (two rows each)")


def check_png_out(path: str) -> None:
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise GenzooError(f"--out {path!r} must be a .png file")
    if not p.parent.is_dir():
        raise GenzooError(f"directory {str(p.parent)!r} does not exist")


def cmd_plot(args) -> None:
    from genzoo.train.rundir import load_run

    if args.figure == "manifold":
        from genzoo.viz.manifold import save_manifold

        if args.grid < 1:
            raise GenzooError(f"--grid {args.grid} must be at least 1")
        out = args.out or str(Path(args.run) / "manifold.png")
        check_png_out(out)
        model, _, _ = load_run(args.run, ema=True)
        save_manifold(model, out, n=args.grid)
        print(f"wrote {out}")
    elif args.figure == "interpolation":
        from genzoo.viz.grid import image_grid, save_image
        from genzoo.viz.interp import interpolation_images

        out = args.out or str(Path(args.run) / f"interpolation-{args.mode}.png")
        gif = out.lower().endswith(".gif")
        if gif and not Path(out).parent.is_dir():
            raise GenzooError(f"directory {str(Path(out).parent)!r} does not exist")
        if not gif:
            check_png_out(out)
        model, _, _ = load_run(args.run, ema=args.ema)
        if model.spec.kind != "image":
            raise GenzooError("plot interpolation draws images; this run models "
                              f"{model.spec.kind} data")
        x = interpolation_images(model, args.rows, args.steps, args.mode, args.seed)
        if gif:
            from genzoo.viz.interp import interpolation_gif

            interpolation_gif(x, args.rows, args.steps, out)
        else:
            save_image(image_grid(x, nrow=args.steps), out)
        print(f"wrote {out}")
    elif args.figure in ("style-mixing", "noise", "truncation"):
        from genzoo.viz import style

        out = args.out or str(Path(args.run) / f"{args.figure}.png")
        check_png_out(out)
        model, _, _ = load_run(args.run, ema=args.ema)
        if args.figure == "style-mixing":
            style.style_mixing_figure(model, out, seed=args.seed)
        elif args.figure == "noise":
            style.noise_figure(model, out, seed=args.seed)
        else:
            try:
                psis = [float(p) for p in args.psi.split(",") if p.strip()]
            except ValueError:
                raise GenzooError(f"--psi {args.psi!r} must be comma-separated numbers") \
                    from None
            if not psis:
                raise GenzooError("--psi names no values; e.g. --psi 0,0.5,1")
            style.truncation_figure(model, out, psis=psis, seed=args.seed)
        print(f"wrote {out}")
    elif args.figure == "training-gif":
        from genzoo.viz.lab2d import training_gif

        out = args.out or str(Path(args.run) / "training.gif")
        training_gif(args.run, out, fps=args.fps)
        print(f"wrote {out}")
    elif args.figure == "decision":
        import torch

        from genzoo.data import load_dataset
        from genzoo.viz.lab2d import decision_surface

        out = args.out or str(Path(args.run) / "decision.png")
        check_png_out(out)
        model, cfg, _ = load_run(args.run, ema=True)
        if not hasattr(model, "discriminate") or model.spec.kind != "points":
            raise GenzooError("plot decision needs a GAN run on 2-D points (e.g. --data "
                              "8gaussians)")
        ref = load_dataset(cfg.data, "train").x[:2000]
        decision_surface(model, ref, out, n_samples=args.n,
                         generator=torch.Generator().manual_seed(args.seed))
        print(f"wrote {out}")
    elif args.figure == "latent":
        from genzoo.data import load_dataset
        from genzoo.viz.latent import save_latent_scatter

        out = args.out or str(Path(args.run) / "latent.png")
        check_png_out(out)
        if args.n < 1:
            raise GenzooError(f"--n {args.n} must be at least 1")
        model, cfg, _ = load_run(args.run, ema=True)
        save_latent_scatter(model, load_dataset(cfg.data, "test"), out, n=args.n,
                            title=f"{cfg.model} ({Path(args.run).name}): test codes by class")
        print(f"wrote {out}")
    elif args.figure == "traversal":
        from genzoo.data import load_dataset
        from genzoo.viz.traversal import write_traversal

        out = args.out or str(Path(args.run) / "traversal.png")
        check_png_out(out)
        try:
            dims = None if args.dims is None else [int(d) for d in args.dims.split(",")]
        except ValueError:
            raise GenzooError(f"--dims {args.dims!r} must be comma-separated integers") from None
        model, cfg, _ = load_run(args.run, ema=True)
        write_traversal(model, load_dataset(cfg.data, "test"), out, dims=dims,
                        steps=args.steps, span=args.span, index=args.index)
        print(f"wrote {out}")
    elif args.figure == "receptive-field":
        from genzoo.data import load_dataset
        from genzoo.viz.receptive import save_receptive_field

        out = args.out or str(Path(args.run) / "receptive-field.png")
        check_png_out(out)
        model, cfg, info = load_run(args.run, ema=True)
        data = load_dataset(cfg.data, "test")
        if not 0 <= args.index < len(data):
            raise GenzooError(f"--index {args.index} is outside the test split "
                              f"(0..{len(data) - 1})")
        x = data.to_float(data.x[args.index:args.index + 1])
        x = model.causal_input(x) if hasattr(model, "causal_input") else x
        try:
            pos = tuple(int(v) for v in args.position.split(",")) if args.position else \
                tuple(s // 2 for s in x.shape[2:])
        except ValueError:
            raise GenzooError(f"--position {args.position!r} must be integers, e.g. 14,14") \
                from None
        save_receptive_field(model, x, pos, out, title=f"{info}: position {pos}")
        print(f"wrote {out}")
    elif args.figure == "features":
        from genzoo.viz.features import feature_picture

        out = args.out or str(Path(args.runs[0]) / "features.png")
        check_png_out(out)
        feature_picture(args.runs, out, n=args.n, method=args.method, seed=args.seed)
    elif args.figure in ("analogy", "pose-interpolation", "prediction"):
        from genzoo.data import load_dataset
        from genzoo.viz.analogy import analogy_grid, pose_interpolation, prediction_grid

        out = args.out or str(Path(args.run) / f"{args.figure}.png")
        check_png_out(out)
        if args.rows < 1:
            raise GenzooError(f"--rows {args.rows} must be at least 1")
        model, cfg, _ = load_run(args.run, ema=True)
        if model.spec.kind != "video":
            raise GenzooError(f"plot {args.figure} needs a video model (drnet); this run "
                              f"models {model.spec.kind} data")
        data = load_dataset(cfg.data, "test")
        if args.figure == "analogy":
            analogy_grid(model, data, out, rows=args.rows, pose=args.pose)
        elif args.figure == "prediction":
            prediction_grid(model, data, out, rows=args.rows)
        else:
            pose_interpolation(model, data, out, rows=args.rows, pose=args.pose,
                               steps=args.steps)
        print(f"wrote {out}")
    elif args.figure == "latent-dims":
        from genzoo.plots import latent_dims

        check_png_out(args.out)
        out = latent_dims(args.runs, args.out, dims=args.dims, train_dir=args.train_dir,
                          data=args.data, steps=args.steps, sets=args.set, n=args.n)
        print(f"wrote {out}")
