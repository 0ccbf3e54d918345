"""resnext_lessons: ResNeXt from scratch, the tested package behind the book.

One module per chapter's idea: ``blocks`` (ResNet and ResNeXt blocks, the paper's three
forms), ``grouped`` (grouped convolution), ``complexity`` and ``explorer`` (parameters and
multiply-adds), ``models`` (whole networks), ``data``, ``loop`` and ``train`` (training and its
command line), ``experiments`` and ``stats`` (the multi-seed comparison), ``dissect`` (opening a
trained block), ``measure``, ``throughput`` and ``bench`` (performance), ``viz`` (figures) and
``notebook`` (what every chapter's first and last cells do).
"""

__version__ = "0.1.0"
