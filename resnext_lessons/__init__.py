"""resnext_lessons: ResNeXt from scratch, the tested package behind the book.

One module per chapter's idea: ``grouped`` (grouped convolution), ``blocks`` (ResNet and
ResNeXt blocks, the paper's three forms), ``complexity`` (parameters and multiply-adds),
``models`` (whole networks), ``data`` and ``train`` (training), ``bench`` (performance),
``viz`` (figures) and ``notebook`` (what every chapter's first and last cells do).
"""

__version__ = "0.1.0"
