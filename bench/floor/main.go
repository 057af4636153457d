// Command floor does nothing. Built static like hermes-s6 (CGO_ENABLED=0,
// -trimpath, -s -w), it is the benchmark's floor: what any Go command costs
// on the machine, fork+exec to exit, before doing any work.
package main

func main() {}
