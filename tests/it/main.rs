//! Restart-persistence tests that drive the real `accounts` and `sqlite-vol` binaries as processes:
//! graceful restarts, SIGKILL under concurrent load, and two instances sharing one volume.

mod restart;
