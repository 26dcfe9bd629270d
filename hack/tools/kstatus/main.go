// Command kstatus prints the kstatus verdict (sigs.k8s.io/cli-utils/pkg/kstatus/status) of
// every object it reads: the same computation Flux, Argo CD's health libraries and
// `kubectl wait`-style tools use. Input: one JSON object or a List on stdin. Output: one line
// per object, "Kind namespace/name STATUS message", tab separated.
package main

import (
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "read:", err)
		os.Exit(2)
	}
	var doc map[string]interface{}
	// apimachinery's decoder keeps whole numbers as int64, as unstructured objects need
	if err := json.Unmarshal(data, &doc); err != nil {
		fmt.Fprintln(os.Stderr, "json:", err)
		os.Exit(2)
	}
	items := []interface{}{doc}
	if list, ok := doc["items"].([]interface{}); ok {
		items = list
	}
	for _, item := range items {
		obj, ok := item.(map[string]interface{})
		if !ok {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		res, err := status.Compute(u)
		if err != nil {
			fmt.Printf("%s\t%s/%s\tError\t%v\n", u.GetKind(), u.GetNamespace(), u.GetName(), err)
			continue
		}
		fmt.Printf("%s\t%s/%s\t%s\t%s\n", u.GetKind(), u.GetNamespace(), u.GetName(), res.Status, res.Message)
	}
}
