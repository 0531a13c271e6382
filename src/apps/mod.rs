//! Applications written against [`crate::app`].
