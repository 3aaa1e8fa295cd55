// A minimal cdk8s app: one Deployment and its Service. Argo CD's cdk8s
// plugin runs `npm install`, then `cdk8s synth --stdout`, and applies what
// this prints.
import { ApiObject, App, Chart, ChartProps } from 'cdk8s';
import { Construct } from 'constructs';

export class HelloChart extends Chart {
  constructor(scope: Construct, id: string, props: ChartProps = {}) {
    super(scope, id, props);
    const labels = { 'app.kubernetes.io/name': 'hello' };

    new ApiObject(this, 'deployment', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'hello' },
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [
              {
                name: 'hello',
                image: 'public.ecr.aws/nginx/nginx:1.27',
                ports: [{ containerPort: 80 }],
              },
            ],
          },
        },
      },
    });

    new ApiObject(this, 'service', {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'hello' },
      spec: {
        selector: labels,
        ports: [{ port: 80, targetPort: 80 }],
      },
    });
  }
}

const app = new App();
new HelloChart(app, 'hello', { namespace: 'hello' });
app.synth();
