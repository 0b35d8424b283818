//! The AI-pipeline CronJob of a team (dedicated or shared): the agent image (or the pipeline's own)
//! run with `pipeline` on the request's schedule, with the team's ids and token, under the same
//! restricted pod spec as the agent.

use super::*;
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};

pub(super) fn cron_job(input: &Input<'_>, name: &str, image: &str, p: &Pipeline) -> Desired {
    let spec = input.spec;
    // A CronJob name is at most 52 characters: its Jobs append an 11-character suffix.
    let cron_name = shorten(&format!("{name}-pipeline"), 52);
    let (env, env_from) = env(input, name);
    let container = Container {
        name: "pipeline".to_owned(),
        image: Some(p.image.clone().unwrap_or_else(|| image.to_owned())),
        args: Some(vec!["pipeline".to_owned()]),
        env: Some(env),
        env_from: Some(env_from),
        resources: Some(resources(spec)),
        ..Default::default()
    };
    let cron = CronJob {
        metadata: meta(input, &cron_name, "pipeline"),
        spec: Some(CronJobSpec {
            schedule: p.schedule.clone(),
            concurrency_policy: Some("Forbid".to_owned()),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(3),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(input.org, input.team, "pipeline")),
                    ..Default::default()
                }),
                spec: Some(JobSpec {
                    backoff_limit: Some(2),
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(labels(input.org, input.team, "pipeline")),
                            ..Default::default()
                        }),
                        spec: Some(pod_spec(spec, container, Some("OnFailure"))),
                    },
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    Desired::new(Kind::CronJob, &cron_name, &cron)
}
