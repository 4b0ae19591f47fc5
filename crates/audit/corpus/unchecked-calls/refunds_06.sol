pragma solidity ^0.6.0;

// Refund sends in a loop whose failures nobody notices.
contract Crowdsale {
    address payable[] public backers;
    mapping(address => uint256) public contributed;
    address public owner;

    constructor() public {
        owner = msg.sender;
    }

    function contribute() external payable {
        if (contributed[msg.sender] == 0) {
            backers.push(msg.sender);
        }
        contributed[msg.sender] += msg.value;
    }

    function refundAll(uint256 start, uint256 end) external {
        require(msg.sender == owner, "owner");
        require(end <= backers.length && start < end, "range");
        for (uint256 i = start; i < end; i++) {
            backers[i].send(contributed[backers[i]]); // expect: unchecked-calls
        }
    }
}
