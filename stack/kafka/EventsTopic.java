// Creates the topic the local S3 server (versitygw) publishes its bucket
// event notifications to, if it does not exist yet. Run by `scripts/stack up`
// with Java's single-file source launcher:
//   java -cp '<kafka lib>/*' EventsTopic.java BOOTSTRAP TOPIC PARTITIONS
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.common.errors.TopicExistsException;

public class EventsTopic {
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: EventsTopic BOOTSTRAP TOPIC PARTITIONS");
            System.exit(2);
        }
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        try (Admin admin = Admin.create(props)) {
            NewTopic topic = new NewTopic(args[1], Integer.parseInt(args[2]), (short) 1);
            try {
                admin.createTopics(List.of(topic)).all().get(60, TimeUnit.SECONDS);
                System.out.println("topic " + args[1] + " created");
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    throw e;
                }
                System.out.println("topic " + args[1] + " exists");
            }
        }
    }
}
