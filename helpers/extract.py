"""`python -m acigen.helpers.extract` runs the extract step (helpers/extract_step.py).

The tar extractor of the image step, once here, is helpers/untar.py.
"""

if __name__ == "__main__":  # `python -m acigen.helpers.extract` is the extract step (see
    # helpers/extract_step.py); this module's name was taken by the tar writer meanwhile
    from acigen.helpers.extract_step import main
    raise SystemExit(main())
