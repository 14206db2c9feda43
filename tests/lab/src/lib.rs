//! The lab: real DNS, mail and ACME servers on loopback, started and stopped by PID.
