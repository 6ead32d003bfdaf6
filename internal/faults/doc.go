// Package faults holds the fault suite (`make faults`): tests, behind the build tag
// `faults`, that build the real `vehicle-data` binary, run it against a PostgreSQL they
// start, stop and restart themselves, and check the contract's "Load, limits and faults"
// on loopback: short requests under slow exports, a database restart, a kill -9 in the
// middle of a finalize, a mixed soak, memory under concurrent exports and uploads,
// slow-loris and oversized requests, the upload quotas, and three replicas on one database
// behind nginx (Debian's, from `make deps`, run by the test on a loopback port): chunks
// spread over them, concurrent finalizes and purges, migrations at once, page links, and a
// rolling restart that loses no request. The nginx configuration (internal/nginxconf) is the one
// the README recommends.
//
// Every test logs its figures in one line starting with "FAULTS <check>", for CI logs.
// The package has no code outside its tests; `make test` does not run them.
package faults
