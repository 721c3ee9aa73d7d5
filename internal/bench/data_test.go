package bench

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"testing"
)

func TestDataReportsDeliveryBesideRawAgeAndMemoryBesideTheDataset(t *testing.T) {
	r, err := DataWith(context.Background(), tiny, DataConfig{Bytes: 2 << 20})
	if err != nil {
		t.Fatal(err)
	}
	checkDataReport(t, r)
}

// checkDataReport checks the figures of a data report of a dataset of
// about 2 MiB.
func checkDataReport(t *testing.T, r *Report) {
	t.Helper()
	if r.Benchmark != "data" {
		t.Errorf("benchmark = %q", r.Benchmark)
	}
	want := map[string]string{
		"agent_hub_client_mb_per_s":      "raw_age_encrypt_decrypt_mb_per_s",
		"agent_to_hub_mb_per_s":          "raw_age_encrypt_decrypt_mb_per_s",
		"hub_to_client_decrypt_mb_per_s": "raw_age_encrypt_decrypt_mb_per_s",
		"agent_and_hub_peak_heap_mib":    "dataset_mib",
		"hub_and_client_peak_heap_mib":   "dataset_mib",
		"raw_age_peak_heap_mib":          "dataset_mib",
	}
	got := map[string]Figure{}
	for _, f := range r.Figures {
		got[f.Name] = f
	}
	for name, baseline := range want {
		f, ok := got[name]
		if !ok || f.Baseline != baseline || f.Value <= 0 || f.BaselineValue <= 0 {
			t.Errorf("%s = %+v, want a positive value beside %s", name, f, baseline)
		}
	}
	if f := got["ciphertext_overhead_bytes"]; f.BaselineValue < 1.5*(1<<20) {
		t.Errorf("the dataset was %v bytes, want about 2 MiB", f.BaselineValue)
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1GiB": 1 << 30, "64MiB": 64 << 20, "10KiB": 10 << 10, "12345": 12345} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("%s = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0", "-1MiB", "lots"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("%q parsed", in)
		}
	}
}

// TestAgentPeakRSSCountsTheAgentNotTheBenchProcess: ru_maxrss of a child
// started by Go counts the parent's memory; the sampled VmHWM must not.
func TestAgentPeakRSSCountsTheAgentNotTheBenchProcess(t *testing.T) {
	ballast := make([]byte, 256<<20)
	for i := range ballast {
		ballast[i] = 1
	}
	cmd := exec.Command("sleep", "0.3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rss := sampleVmHWM(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	peak := rss.stop()
	if peak == 0 || peak > 64<<20 {
		t.Errorf("sleep's peak RSS = %d MiB while this process holds %d MiB; want a few MiB", peak>>20, len(ballast)>>20)
	}
	runtime.KeepAlive(ballast)
}
