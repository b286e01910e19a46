package leader

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/inferxds/inferxds/drpolicy/dr"
)

// Names in the state ConfigMap.
const (
	// StateKey is the data key holding the DR state as JSON.
	StateKey = "state.json"
	// LeaderAnnotation names the replica that wrote the state.
	LeaderAnnotation = "inferxds.io/leader"
	fieldManager     = "inferxds"
)

// stateStore reads and writes the DR state ConfigMap.
type stateStore struct {
	client kubernetes.Interface
	ns     string
	name   string
	id     string
}

// read returns the state written last; ok is false when none was.
func (s stateStore) read(ctx context.Context) (st *dr.State, ok bool, err error) {
	cm, err := s.client.CoreV1().ConfigMaps(s.ns).Get(ctx, s.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return s.decode(cm)
}

func (s stateStore) decode(cm *corev1.ConfigMap) (*dr.State, bool, error) {
	data, ok := cm.Data[StateKey]
	if !ok {
		return nil, false, nil
	}
	var st dr.State
	if err := json.Unmarshal([]byte(data), &st); err != nil {
		return nil, false, fmt.Errorf("ConfigMap %s/%s: %s: %w", s.ns, s.name, StateKey, err)
	}
	st.Sort()
	return &st, true, nil
}

// write applies st as the state, signed by this replica.
func (s stateStore) write(ctx context.Context, st *dr.State) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	cm := corev1ac.ConfigMap(s.name, s.ns).
		WithLabels(map[string]string{"app.kubernetes.io/managed-by": "inferxds"}).
		WithAnnotations(map[string]string{LeaderAnnotation: s.id}).
		WithData(map[string]string{StateKey: string(data)})
	_, err = s.client.CoreV1().ConfigMaps(s.ns).Apply(ctx, cm, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	return err
}

// follow watches the ConfigMap and hands each state written to publish;
// the returned function gives the state last seen. It returns once the
// first list is in.
func (s stateStore) follow(ctx context.Context, log *slog.Logger, publish func(*dr.State)) (func() (*dr.State, bool), error) {
	factory := informers.NewSharedInformerFactoryWithOptions(s.client, 0, informers.WithNamespace(s.ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", s.name).String()
		}))
	inf := factory.Core().V1().ConfigMaps()
	handle := func(obj any) {
		cm, ok := obj.(*corev1.ConfigMap)
		if !ok {
			return
		}
		st, ok, err := s.decode(cm)
		if err != nil {
			log.Error("DR state not followed", "error", err)
			return
		}
		if ok {
			publish(st)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    handle,
		UpdateFunc: func(_, obj any) { handle(obj) },
	}); err != nil {
		return nil, err
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		return nil, ctx.Err()
	}
	return func() (*dr.State, bool) {
		cm, err := inf.Lister().ConfigMaps(s.ns).Get(s.name)
		if err != nil {
			return nil, false
		}
		st, ok, err := s.decode(cm)
		return st, ok && err == nil
	}, nil
}
