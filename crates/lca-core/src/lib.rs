//! Pure decisions of lca-rs: given plain data (the CR's spec and status, facts observed on the
//! node), decide what to do next. No I/O, no clock reads except through arguments, so every
//! rule of the stage machine is unit- and property-tested here.
