package sim

import (
	"encoding/json"
	"slices"

	"github.com/inferxds/inferxds/cmd/modelsim/oip"
)

// garble is the wrong answer a corrupted model gives for text: reversed,
// letters rotated by 13 and digits by 5. It never equals text.
func garble(text string) string {
	r := []rune(text)
	slices.Reverse(r)
	for i, c := range r {
		r[i] = rotate(c)
	}
	if out := string(r); out != text {
		return out
	}
	return text + "?" // no letter or digit, and a palindrome
}

func rotate(c rune) rune {
	switch {
	case c >= 'a' && c <= 'z':
		return 'a' + (c-'a'+13)%26
	case c >= 'A' && c <= 'Z':
		return 'A' + (c-'A'+13)%26
	case c >= '0' && c <= '9':
		return '0' + (c-'0'+5)%10
	}
	return c
}

// garbledOutput is a corrupted predict output: a JSON string that is not
// the input's echo.
func garbledOutput(input json.RawMessage) json.RawMessage {
	out, _ := json.Marshal(garble(string(input))) // a string always marshals
	return out
}

// garbledTensor is a corrupted ModelInfer output: the BYTES contents
// garbled, any other contents dropped.
func garbledTensor(in *oip.ModelInferRequest_InferInputTensor) *oip.ModelInferResponse_InferOutputTensor {
	var contents [][]byte
	for _, b := range in.GetContents().GetBytesContents() {
		contents = append(contents, []byte(garble(string(b))))
	}
	return &oip.ModelInferResponse_InferOutputTensor{
		Name: in.GetName(), Datatype: "BYTES", Shape: in.GetShape(),
		Contents: &oip.InferTensorContents{BytesContents: contents},
	}
}

func garbledRaw(raw [][]byte) [][]byte {
	out := make([][]byte, len(raw))
	for i, b := range raw {
		out[i] = []byte(garble(string(b)))
	}
	return out
}
