// Package faults holds the fault suite (`make faults`): tests, behind the build tag
// `faults`, that build the real `vehicle-data` binary, run it against a PostgreSQL they
// start, stop and restart themselves, and check the contract's "Load, limits and faults"
// on loopback: short requests under slow exports, a database restart, a kill -9 in the
// middle of a finalize, a mixed soak, memory under concurrent exports and uploads,
// slow-loris and oversized requests, and the upload quotas.
//
// Every test logs its figures in one line starting with "FAULTS <check>", for CI logs.
// The package has no code outside its tests; `make test` does not run them.
package faults
