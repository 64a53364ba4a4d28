//! Safe, streaming extraction of seed archives (tar / tar.gz) into a target directory.
