"""The rules the gateway and the CSSM share: state machines, timers, the lab
clock, codes and certificates, the licence and alert catalogues. No views."""
