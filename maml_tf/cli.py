"""The ``maml`` command (click)."""
import click

DATASETS = ("omniglot", "mini_imagenet")


@click.group()
@click.version_option(package_name="maml-tf")
def main():
    """maml-tf: Model-Agnostic Meta-Learning for TensorFlow / Keras."""


@main.group()
def data():
    """Prepare datasets offline from local files."""


@data.command("prepare")
@click.argument("name", type=click.Choice(DATASETS))
@click.option("--from", "source", type=click.Path(file_okay=False), default=None,
              help="Folder with the source files. Omniglot: the four upstream zips (default "
                   "../shared/data/omniglot when present). MiniImagenet: images/ + "
                   "train/val/test.csv, or the three mini-imagenet-cache-*.pkl files.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="TFDS data directory (default $TFDS_DATA_DIR or ~/tensorflow_datasets).")
def prepare(name, source, data_dir):
    """Build dataset NAME for tensorflow-datasets, without network access."""
    from maml_tf.datasets import DatasetNotFoundError

    try:
        if name == "omniglot":
            from maml_tf.datasets import omniglot
            out = omniglot.prepare(source, data_dir)
            images = omniglot.load_characters(out)  # decode once now, cached for training
            click.echo(f"omniglot: {images.shape[0]} characters x {images.shape[1]} drawings in {out}")
        else:
            if source is None:
                raise click.UsageError("mini_imagenet needs --from DIR (its images are not shipped).")
            from maml_tf.datasets import mini_imagenet
            out = mini_imagenet.prepare(source, data_dir)
            for split in ("train", "validation", "test"):
                images, _ = mini_imagenet.load(split, out)
                click.echo(f"mini_imagenet {split}: {images.shape[0]} classes x {images.shape[1]} images")
            click.echo(f"prepared in {out}")
    except DatasetNotFoundError as error:
        raise click.ClickException(str(error)) from None


if __name__ == "__main__":
    main()
