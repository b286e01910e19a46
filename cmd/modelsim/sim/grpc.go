package sim

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/inferxds/inferxds/cmd/modelsim/oip"
)

// InstanceParameter is the ModelInferResponse parameter holding the
// instance id (the id field holds it too).
const InstanceParameter = "instance"

// oipService serves the Open Inference Protocol v2 gRPC API.
type oipService struct {
	oip.UnimplementedGRPCInferenceServiceServer
	s *Server
}

func (o *oipService) ServerLive(context.Context, *oip.ServerLiveRequest) (*oip.ServerLiveResponse, error) {
	return &oip.ServerLiveResponse{Live: true}, nil
}

func (o *oipService) ServerReady(context.Context, *oip.ServerReadyRequest) (*oip.ServerReadyResponse, error) {
	return &oip.ServerReadyResponse{Ready: o.s.Status() == StatusServing}, nil
}

func (o *oipService) ModelReady(_ context.Context, req *oip.ModelReadyRequest) (*oip.ModelReadyResponse, error) {
	return &oip.ModelReadyResponse{Ready: o.s.models[req.GetName()] && o.s.Status() == StatusServing}, nil
}

func (o *oipService) ModelMetadata(_ context.Context, req *oip.ModelMetadataRequest) (*oip.ModelMetadataResponse, error) {
	if !o.s.models[req.GetName()] {
		return nil, o.status(codes.NotFound, fmt.Errorf("model %q: %w", req.GetName(), errModelNotServed))
	}
	return &oip.ModelMetadataResponse{Name: req.GetName(), Versions: []string{"1"}, Platform: "modelsim"}, nil
}

func (o *oipService) ModelInfer(ctx context.Context, req *oip.ModelInferRequest) (*oip.ModelInferResponse, error) {
	model := req.GetModelName()
	err := o.s.process(ctx, model)
	code := grpcCode(err)
	o.s.metrics.requests.WithLabelValues(o.s.modelLabel(model), "grpc", code.String()).Inc()
	if err != nil {
		return nil, o.status(code, fmt.Errorf("model %q: %w", model, err))
	}
	return o.reply(req), nil
}

// reply echoes the inputs as outputs and names the instance; a corrupted
// instance garbles them.
func (o *oipService) reply(req *oip.ModelInferRequest) *oip.ModelInferResponse {
	corrupt := o.s.Corrupted()
	outputs := make([]*oip.ModelInferResponse_InferOutputTensor, 0, len(req.GetInputs()))
	for _, in := range req.GetInputs() {
		out := &oip.ModelInferResponse_InferOutputTensor{
			Name: in.GetName(), Datatype: in.GetDatatype(), Shape: in.GetShape(), Contents: in.GetContents(),
		}
		if corrupt {
			out = garbledTensor(in)
		}
		outputs = append(outputs, out)
	}
	raw := req.GetRawInputContents()
	if corrupt {
		raw = garbledRaw(raw)
	}
	return &oip.ModelInferResponse{
		ModelName:         req.GetModelName(),
		ModelVersion:      req.GetModelVersion(),
		Id:                o.s.cfg.ID,
		Parameters:        map[string]*oip.InferParameter{InstanceParameter: stringParameter(o.s.cfg.ID)},
		Outputs:           outputs,
		RawOutputContents: raw,
	}
}

func stringParameter(v string) *oip.InferParameter {
	return &oip.InferParameter{ParameterChoice: &oip.InferParameter_StringParam{StringParam: v}}
}

func grpcCode(err error) codes.Code {
	var injected injectedError
	switch {
	case err == nil:
		return codes.OK
	case errors.Is(err, errModelNotServed):
		return codes.NotFound
	case errors.As(err, &injected):
		return injected.failure.GRPCCode
	case errors.As(err, new(notServingError)):
		return codes.Unavailable
	default:
		return status.FromContextError(err).Code()
	}
}

func (o *oipService) status(code codes.Code, err error) error {
	return status.Errorf(code, "instance %s: %v", o.s.cfg.ID, err)
}
