//! `HttpCams`: the CAMS client on reqwest.
