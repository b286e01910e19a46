package snapshot

import (
	"encoding/json"
	"net/http"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jsontometadatav3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/json_to_metadata/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// OpenAI-compatible requests (vLLM's /v1/chat/completions, /v1/completions,
// /v1/embeddings) name their model in the JSON body, not in a header. On the
// Envoy socket listener the json_to_metadata filter copies the body's
// "model" into dynamic metadata before the router picks a route, and each
// model has a route matching that metadata. gRPC clients never see the
// filter (the API listener has only the router) and never send these paths.
const (
	jsonToMetadataFilterName = "envoy.filters.http.json_to_metadata"
	// openAIMetadataNamespace and openAIModelKey are where the filter puts
	// the body's model and where the routes look for it.
	openAIMetadataNamespace = "inferxds.openai"
	openAIModelKey          = "model"
	// openAIPathRegex matches the OpenAI endpoints whose body names a model.
	openAIPathRegex = `^/v1/(chat/completions|completions|embeddings)$`
	// OpenAIModelsPath answers with the models the policy serves.
	OpenAIModelsPath = "/v1/models"
	// jsonContentTypeRegex accepts application/json with parameters (such
	// as a charset), which clients commonly add.
	jsonContentTypeRegex = `application/json(\s*;.*)?`
	// openAIOwner is the owned_by of every listed model.
	openAIOwner = "inferxds"
)

// OpenAIUnknownModelStatus is the status of an OpenAI request whose body
// names no model the policy serves (or no model at all).
const OpenAIUnknownModelStatus = http.StatusNotFound

// openAIUnknownModelBody is OpenAI's error shape for a model it does not know.
const openAIUnknownModelBody = `{"error":{"message":"The model named in the request body is not served here; GET /v1/models lists the models.",` +
	`"type":"invalid_request_error","param":"model","code":"model_not_found"}}` + "\n"

// jsonToMetadataFilter extracts the request body's "model" field.
func jsonToMetadataFilter() *hcmv3.HttpFilter {
	cfg := &jsontometadatav3.JsonToMetadata{RequestRules: &jsontometadatav3.JsonToMetadata_MatchRules{
		Rules: []*jsontometadatav3.JsonToMetadata_Rule{{
			Selectors: []*jsontometadatav3.JsonToMetadata_Selector{{
				Selector: &jsontometadatav3.JsonToMetadata_Selector_Key{Key: openAIModelKey},
			}},
			OnPresent: &jsontometadatav3.JsonToMetadata_KeyValuePair{
				MetadataNamespace: openAIMetadataNamespace,
				Key:               openAIModelKey,
				Type:              jsontometadatav3.JsonToMetadata_STRING,
			},
		}},
		AllowContentTypesRegex: &matcherv3.RegexMatcher{Regex: jsonContentTypeRegex},
	}}
	return &hcmv3.HttpFilter{
		Name:       jsonToMetadataFilterName,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(cfg)},
	}
}

// openAIRoute sends OpenAI requests whose body names model to its cluster.
func openAIRoute(model string, action *routev3.RouteAction) *routev3.Route {
	return &routev3.Route{
		Name: openAIRouteName(model),
		Match: &routev3.RouteMatch{
			PathSpecifier: openAIPaths(),
			DynamicMetadata: []*matcherv3.MetadataMatcher{{
				Filter: openAIMetadataNamespace,
				Path:   []*matcherv3.MetadataMatcher_PathSegment{{Segment: &matcherv3.MetadataMatcher_PathSegment_Key{Key: openAIModelKey}}},
				Value: &matcherv3.ValueMatcher{MatchPattern: &matcherv3.ValueMatcher_StringMatch{StringMatch: &matcherv3.StringMatcher{
					MatchPattern: &matcherv3.StringMatcher_Exact{Exact: model},
				}}},
			}},
		},
		Action: &routev3.Route_Route{Route: action},
	}
}

func openAIPaths() *routev3.RouteMatch_SafeRegex {
	return &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: openAIPathRegex}}
}

// openAIFallbackRoutes follow every model's routes: the model list, and the
// answer for an OpenAI request no model route took.
func openAIFallbackRoutes(models []string) []*routev3.Route {
	return []*routev3.Route{
		{
			Name:   OpenAIModelsRouteName,
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: OpenAIModelsPath}},
			Action: jsonResponse(http.StatusOK, openAIModelList(models)),
			// A direct response is text/plain unless the route says otherwise.
			ResponseHeadersToAdd: jsonContentType(),
		},
		{
			Name:                 OpenAIUnknownModelRouteName,
			Match:                &routev3.RouteMatch{PathSpecifier: openAIPaths()},
			Action:               jsonResponse(OpenAIUnknownModelStatus, openAIUnknownModelBody),
			ResponseHeadersToAdd: jsonContentType(),
		},
	}
}

func jsonResponse(status uint32, body string) *routev3.Route_DirectResponse {
	return &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
		Status: status,
		Body:   &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: body}},
	}}
}

func jsonContentType() []*corev3.HeaderValueOption {
	return []*corev3.HeaderValueOption{{
		Header:       &corev3.HeaderValue{Key: "content-type", Value: "application/json"},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}}
}

// openAIModel and openAIList are OpenAI's GET /v1/models shapes.
type openAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

type openAIList struct {
	Object string        `json:"object"`
	Data   []openAIModel `json:"data"`
}

// openAIModelList is the /v1/models body for models, in the order given
// (sorted by name). Created is 0: the translation has no clock.
func openAIModelList(models []string) string {
	list := openAIList{Object: "list", Data: make([]openAIModel, len(models))}
	for i, m := range models {
		list.Data[i] = openAIModel{ID: m, Object: "model", OwnedBy: openAIOwner}
	}
	b, err := json.Marshal(list)
	if err != nil {
		panic("snapshot: encoding the model list: " + err.Error()) // strings and ints always encode
	}
	return string(b) + "\n"
}
