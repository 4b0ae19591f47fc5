pragma solidity ^0.4.24;

contract BatchSender {
    function multisend(address[] recipients, uint256 each) public payable {
        require(msg.value == recipients.length * each); // expect: arithmetic
        for (uint256 i = 0; i < recipients.length; i++) {
            recipients[i].transfer(each); // expect: denial-of-service
        }
    }
}
